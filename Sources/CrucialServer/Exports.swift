// `import CrucialServer`: the server core (store, objects, replication, persistence, the
// NIO server) and its operations stack (the command, etcd, Prometheus, lifecycle).
@_exported public import CrucialServerCore
