import CrucialServer
import CrucialTestFunctions
import Foundation

// A crucial-server that also knows the tests' @Shared types. A cluster test that needs a
// broken member to catch asks for one here (CRUCIAL_TEST_FAULT=skip-replication): the fault
// goes in through CrucialServer's package API; crucial-server itself has no such switch.
let faults: ClusterFaults = ProcessInfo.processInfo.environment["CRUCIAL_TEST_FAULT"] == "skip-replication" ? .skipReplication : []
await CrucialServerCommand.main(registering: [TestCentroids.self, Tally.self], faults: faults)
