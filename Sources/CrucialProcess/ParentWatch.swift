#if canImport(Glibc)
import Glibc
#endif

/// Lets a child server stop itself when the process that started it dies without
/// stopping it (a crashed test or benchmark), instead of lingering on its port.
///
/// `ServerProcess` sets `CRUCIAL_EXIT_WITH_PARENT` to its own pid in the child's
/// environment; `crucial-server` and `crucial-lambda-emulator` call ``start()`` at
/// start-up. Once the parent is gone (the child was re-parented), the child sends
/// itself SIGTERM, so it shuts down the same graceful way as when told to.
public enum ParentWatch {
    /// The variable a parent sets to its pid.
    public static let environmentKey = "CRUCIAL_EXIT_WITH_PARENT"

    /// Starts watching when the environment asks for it; returns whether it does.
    @discardableResult
    public static func start(every interval: Duration = .milliseconds(500)) -> Bool {
        guard let raw = getenv(environmentKey), let parent = pid_t(String(cString: raw)), parent > 0 else { return false }
        Task.detached {
            while getppid() == parent { try? await Task.sleep(for: interval) }
            kill(getpid(), SIGTERM)
        }
        return true
    }
}
