import CrucialServer
import CrucialTestFunctions

await CrucialServerCommand.main(registering: TestCentroids.self, Tally.self)
