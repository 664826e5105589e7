@_exported public import CrucialCore
