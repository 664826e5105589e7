public import CrucialServerCore
public import ServiceLifecycle

/// `crucial-server`'s server is a swift-service-lifecycle `Service`: it stops gracefully
/// (parked calls answered, members handed over) when its service group shuts down.
extension CrucialServer: Service {
    /// Serves until the service group shuts down gracefully.
    public func run() async throws {
        try await serve {
            try await gracefulShutdown()
            SystemdNotifier.notify("STOPPING=1\nSTATUS=shutting down")
        }
    }
}
