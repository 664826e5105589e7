@_exported public import CrucialCore
@_exported public import CrucialTransport
