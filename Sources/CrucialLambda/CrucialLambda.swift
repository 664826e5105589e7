internal import CCrucialShims
@_exported public import CrucialClient
internal import FoundationEssentials

#if canImport(Glibc)
internal import Glibc
#endif

/// The Lambda custom runtime for Crucial cloud functions: one call at the top of
/// `main` makes the program's own executable its Lambda `bootstrap`.
///
/// ```swift
/// @main struct App {
///     static func main() async throws {
///         await CrucialLambda.serveIfLambda(registering: PiEstimator.self)
///         // Not in Lambda: the driver program starts here.
///         let threads = (0..<8).map { _ in CloudThread(PiEstimator(iterations: 1_000_000)) }
///         ...
///     }
/// }
/// ```
public enum CrucialLambda {
    /// When a Lambda runtime started this process (`AWS_LAMBDA_RUNTIME_API` is set),
    /// serves invocations of the registered functions until the runtime goes away,
    /// then exits; otherwise registers them and returns at once.
    ///
    /// - Parameter types: ``Runnable``, ``Callable`` and ``IterativeTask`` types.
    public static func serveIfLambda(registering types: any Codable.Type...) async {
        await serveIfLambda(registering: types)
    }

    /// `serveIfLambda(registering:)` (the variadic one) with an array.
    public static func serveIfLambda(registering types: [any Codable.Type]) async {
        let registration = Result { () throws(CloudThreadError) in try CloudFunctions.register(types) }
        guard let api = ProcessInfo.processInfo.environment["AWS_LAMBDA_RUNTIME_API"], !api.isEmpty else {
            if case .failure(let error) = registration {
                StandardStreams.error("crucial: \(error)\n")
                exit(1)
            }
            return
        }
        // Lambda collects stdout through a pipe: line buffering keeps each line, and the
        // last ones before a crash, in the function's log.
        crucial_line_buffer_stdout()
        let runtime = RuntimeClient(api: api)
        if case .failure(let error) = registration {
            await runtime.initError(type: "Runtime.InvalidFunction", message: error.description)
            exit(1)
        }
        // The names a payload's "function" may take, in the function's log.
        print("crucial: serving \(CloudFunctions.names.joined(separator: ", "))")
        var loop = RuntimeLoop(runtime: runtime)
        let code = await loop.run()
        exit(code)
    }

    /// Whether this process was started by a Lambda runtime.
    public static var isInLambda: Bool {
        !(ProcessInfo.processInfo.environment["AWS_LAMBDA_RUNTIME_API"] ?? "").isEmpty
    }
}

