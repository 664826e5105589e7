// The Santa Claus problem (§6.3.3 of the Crucial paper, after Trono and Downey's
// solution): Santa sleeps until the ninth reindeer back from vacation or the third elf
// needing help wakes him; reindeer come first. Counters live under a mutex semaphore,
// and every rule is checked as it is used: violations are counted and must stay 0.
// apps/santa/plain runs it with plain threads, apps/santa/crucial on Crucial.
import ArgumentParser
import Crucial
import Foundation

/// Everything the participants share.
struct North: Codable, Sendable {
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

struct Participant: Runnable {
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
                let delivered = try await north.deliveries.get(), helped = try await north.groups.get()
                if delivered >= deliveries && helped >= groups { break }
                try await north.santa.acquire()
                try await north.mutex.acquire()
                if try await north.reindeer.get() >= 9 {
                    if try await north.reindeer.get() != 9 { try await north.violations.addAndGet(1) }
                    try await north.reindeer.addAndGet(-9)
                    try await north.deliveries.addAndGet(1)
                    try await north.sleigh.release(9)
                    for _ in 0..<9 { try await north.hitched.acquire() }  // all hitched before any is back: no one takes another's place
                } else if try await north.elves.get() == 3 {
                    try await north.groups.addAndGet(1)
                    try await north.workshop.release(3)
                } else {
                    try await north.violations.addAndGet(1)  // woken for nothing
                }
                try await north.mutex.release()
            }
        case .reindeer:
            for _ in 0..<deliveries {
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...pause)))  // on vacation
                try await north.mutex.acquire()
                if try await north.reindeer.addAndGet(1) == 9 { try await north.santa.release() }
                try await north.mutex.release()
                try await north.sleigh.acquire()  // hitched: off to deliver
                try await north.hitched.release()
            }
        case .elf:
            while try await north.requests.addAndGet(1) <= Int64(elves * helpsPerElf) {  // a ticket per help: any 3 free elves form the last group
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...pause)))  // making toys
                try await north.elfDoor.acquire()
                try await north.mutex.acquire()
                let waiting = try await north.elves.addAndGet(1)
                if waiting > 3 { try await north.violations.addAndGet(1) }
                if waiting == 3 { try await north.santa.release() } else { try await north.elfDoor.release() }
                try await north.mutex.release()
                try await north.workshop.acquire()  // helped
                try await north.mutex.acquire()
                if try await north.elves.addAndGet(-1) == 0 { try await north.elfDoor.release() }
                try await north.mutex.release()
            }
        }
    }
}

@main
struct SantaClaus: AsyncParsableCommand, CrucialProgram {
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
                group.addTask { try await participant.runInCloud(); return role }
            }
            for try await role in group where role == .santa { print("Santa is done") }
        }
        let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        let d = try await north.deliveries.get(), g = try await north.groups.get(), v = try await north.violations.get()
        print(String(format: "deliveries = %lld, elf groups = %lld, violations = %lld in %.3f s", d, g, v, seconds))
        guard d == deliveries, g == elves * helps / 3, v == 0 else { throw ValidationError("the rules were broken") }
    }
}
