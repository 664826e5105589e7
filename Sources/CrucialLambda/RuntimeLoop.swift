internal import CrucialClient
internal import FoundationEssentials

#if canImport(Glibc)
internal import Glibc
#endif

/// next invocation → connect to the DSO layer → run → post the answer or the error,
/// as AWS's custom-runtime contract describes.
struct RuntimeLoop<API: RuntimeAPI> {
    let runtime: API
    /// The DSO endpoint the shared client talks to, kept across warm invocations.
    private var endpoint: DSOEndpoint?

    init(runtime: API) {
        self.runtime = runtime
    }

    /// Serves until the Runtime API fails; returns the exit code.
    mutating func run() async -> Int32 {
        while true {
            let event: RuntimeClient.Invocation
            do { event = try await runtime.next() } catch {
                log("crucial: the Lambda Runtime API failed, exiting: \(error)")
                return 1
            }
            if let trace = event.traceID { setenv("_X_AMZN_TRACE_ID", trace, 1) } else { unsetenv("_X_AMZN_TRACE_ID") }
            let result: Result<Data, LambdaErrorBody>
            if let failure = await connect(for: event.payload) {
                result = .failure(failure)
            } else {
                // On the shared client's event loop: the function's calls go out and come back
                // without a thread switch. A Lambda process runs one invocation at a time, so
                // a long computation holds up only its own calls.
                result = await withTaskExecutorPreference(CrucialClient.shared.taskExecutor) {
                    await CloudFunctions.execute(payload: event.payload, requestID: event.requestID, deadline: event.deadline)
                }
            }
            do {
                switch result {
                case .success(let answer): try await runtime.respond(requestID: event.requestID, body: answer)
                case .failure(let error): try await runtime.fail(requestID: event.requestID, error: error)
                }
            } catch {
                log("crucial: could not post the result of \(event.requestID), exiting: \(error)")
                return 1
            }
        }
    }

    /// Points the shared client at the payload's DSO servers and reaches one before
    /// user code runs; an error body when that fails. A warm process that already
    /// talks to those servers skips the round trip (the client reconnects by itself).
    private mutating func connect(for payload: Data) async -> LambdaErrorBody? {
        guard let header = try? PayloadHeader.decode(payload), let wanted = header.crucial, !wanted.servers.isEmpty else {
            return nil  // not a Crucial payload, or no DSO servers: execute() reports or runs without them
        }
        if wanted == endpoint { return nil }
        CrucialClient.useShared(wanted.makeClient())
        endpoint = wanted
        do {
            try await CrucialClient.shared.ping()
            return nil
        } catch {
            endpoint = nil
            // Unreachable, or reached and refused (a wrong token, a cancelled run): said apart.
            if let refusal = error as? CrucialError, ![.connectionFailed, .connectionLost].contains(refusal.code) {
                return LambdaErrorBody(
                    errorType: "Crucial.\(refusal.code.name)",
                    errorMessage: "the DSO servers \(wanted.servers.joined(separator: ", ")) refused the function: \(refusal)")
            }
            return LambdaErrorBody(
                errorType: "Crucial.DSOUnreachable",
                errorMessage: "the function cannot reach the DSO servers \(wanted.servers.joined(separator: ", ")): \(error)")
        }
    }
}

func log(_ line: String) {
    StandardStreams.error(line + "\n")
}
