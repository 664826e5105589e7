/// Many calls in one round trip, as Redis clients pipeline commands.
extension CrucialClient {
    /// Makes `call` for every element at once and returns the results in the elements'
    /// order. The calls run on one of this client's event loops (``taskExecutor``), so
    /// all of them are written to a server's connection in one turn of that loop and sent
    /// with one system call, and the server answers them together: one round trip for the
    /// lot, not one per call.
    ///
    /// ```swift
    /// let counters = (0..<100).map { AtomicLong("hits-\($0)", initial: 0) }
    /// let values = try await CrucialClient.shared.batch(counters) { try await $0.incrementAndGet() }
    /// ```
    ///
    /// Each call is a call of its own: routed to its object's primary, retried and
    /// de-duplicated alone. If some fail, every call still runs to its end (those that went
    /// through stay done) and the first failure, in the elements' order, is thrown.
    public func batch<Element: Sendable, Result: Sendable>(
        _ elements: some Sequence<Element>, _ call: @escaping @Sendable (Element) async throws -> Result
    ) async throws -> [Result] {
        let elements = Array(elements)
        guard !elements.isEmpty else { return [] }
        let outcomes = await withTaskExecutorPreference(taskExecutor) {
            await withTaskGroup(of: (Int, Swift.Result<Result, any Error>).self) { group in
                for (index, element) in elements.enumerated() {
                    group.addTask {
                        do { return (index, .success(try await call(element))) } catch { return (index, .failure(error)) }
                    }
                }
                var outcomes = [Swift.Result<Result, any Error>?](repeating: nil, count: elements.count)
                for await (index, outcome) in group { outcomes[index] = outcome }
                return outcomes
            }
        }
        return try outcomes.map { try $0!.get() }
    }
}
