// The Santa Claus problem (§6.3.3 of the Crucial paper, after Trono and Downey's
// solution): Santa sleeps until the ninth reindeer back from vacation or the third elf
// needing help wakes him; reindeer come first. Counters live under a mutex semaphore,
// and every rule is checked as it is used: violations are counted and must stay 0.
// apps/santa/plain runs it with plain threads, apps/santa/crucial on Crucial.
import ArgumentParser
import Foundation
import Synchronization

actor Semaphore {
    private var permits: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []
    init(permits: Int) { self.permits = permits }
    func acquire() async {
        if permits > 0 {
            permits -= 1
        } else {
            await withCheckedContinuation { waiting.append($0) }
        }
    }
    func release(_ n: Int = 1) {
        for _ in 0..<n {
            if waiting.isEmpty { permits += 1 } else { waiting.removeFirst().resume() }
        }
    }
}

// A counter named and shaped after java.util.concurrent's, as the paper's Java programs use it.
final class AtomicLong: Sendable {
    private let value = Atomic<Int64>(0)
    @discardableResult func addAndGet(_ delta: Int64) -> Int64 { value.wrappingAdd(delta, ordering: .relaxed).newValue }
    func get() -> Int64 { value.load(ordering: .relaxed) }
}

/// Everything the participants share.
struct North: Sendable {
    var mutex = Semaphore(permits: 1)
    var santa = Semaphore(permits: 0)
    var sleigh = Semaphore(permits: 0)
    var hitched = Semaphore(permits: 0)
    var elfDoor = Semaphore(permits: 1)
    var workshop = Semaphore(permits: 0)
    var reindeer = AtomicLong()
    var elves = AtomicLong()
    var deliveries = AtomicLong()
    var groups = AtomicLong()
    var requests = AtomicLong()
    var violations = AtomicLong()
}

enum Role: String, Codable, Sendable { case santa, reindeer, elf }

struct Participant: Sendable {
    var role: Role
    var deliveries: Int
    var helpsPerElf: Int
    var elves: Int
    var pause: Int
    var north: North

    func run() async throws {
        switch role {
        case .santa:
            let groups = elves * helpsPerElf / 3
            while true {
                let delivered = north.deliveries.get(), helped = north.groups.get()
                if delivered >= deliveries && helped >= groups { break }
                await north.santa.acquire()
                await north.mutex.acquire()
                if north.reindeer.get() >= 9 {
                    if north.reindeer.get() != 9 { north.violations.addAndGet(1) }
                    north.reindeer.addAndGet(-9)
                    north.deliveries.addAndGet(1)
                    await north.sleigh.release(9)
                    for _ in 0..<9 { await north.hitched.acquire() }  // all hitched before any is back: no one takes another's place
                } else if north.elves.get() == 3 {
                    north.groups.addAndGet(1)
                    await north.workshop.release(3)
                } else {
                    north.violations.addAndGet(1)  // woken for nothing
                }
                await north.mutex.release()
            }
        case .reindeer:
            for _ in 0..<deliveries {
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...pause)))  // on vacation
                await north.mutex.acquire()
                if north.reindeer.addAndGet(1) == 9 { await north.santa.release() }
                await north.mutex.release()
                await north.sleigh.acquire()  // hitched: off to deliver
                await north.hitched.release()
            }
        case .elf:
            while north.requests.addAndGet(1) <= Int64(elves * helpsPerElf) {  // a ticket per help: any 3 free elves form the last group
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...pause)))  // making toys
                await north.elfDoor.acquire()
                await north.mutex.acquire()
                let waiting = north.elves.addAndGet(1)
                if waiting > 3 { north.violations.addAndGet(1) }
                if waiting == 3 { await north.santa.release() } else { await north.elfDoor.release() }
                await north.mutex.release()
                await north.workshop.acquire()  // helped
                await north.mutex.acquire()
                if north.elves.addAndGet(-1) == 0 { await north.elfDoor.release() }
                await north.mutex.release()
            }
        }
    }
}

@main
struct SantaClaus: AsyncParsableCommand {
    @Option(help: "Deliveries (each needs all 9 reindeer).") var deliveries = 15
    @Option(help: "Elves.") var elves = 10
    @Option(help: "Helps per elf on average: elves × this requests in all, a multiple of 3.") var helps = 3
    @Option(help: "Most milliseconds a reindeer is on vacation, or an elf makes toys, before coming to Santa.") var pause = 0

    func validate() throws {
        guard elves * helps % 3 == 0, elves >= 3 else { throw ValidationError("elves × helps must be a multiple of 3, with at least 3 elves") }
    }

    func run() async throws {
        let north = North()
        let start = ContinuousClock.now
        let roles = [Role.santa] + Array(repeating: .reindeer, count: 9) + Array(repeating: .elf, count: elves)
        try await withThrowingTaskGroup(of: Role.self) { group in
            for role in roles {
                let participant = Participant(role: role, deliveries: deliveries, helpsPerElf: helps, elves: elves, pause: pause, north: north)
                group.addTask { try await participant.run(); return role }
            }
            for try await role in group where role == .santa { print("Santa is done") }
        }
        let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        let d = north.deliveries.get(), g = north.groups.get(), v = north.violations.get()
        print(String(format: "deliveries = %lld, elf groups = %lld, violations = %lld in %.3f s", d, g, v, seconds))
        guard d == deliveries, g == elves * helps / 3, v == 0 else { throw ValidationError("the rules were broken") }
    }
}
