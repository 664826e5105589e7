// What a `@Shared` type's expansion names (Value, SharedCall, MethodKind, CrucialPlugin...).
@_exported public import CrucialCore
