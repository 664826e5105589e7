// The Lambda bootstrap of the cloud-thread tests.
import CrucialLambda
import CrucialTestFunctions

await CrucialLambda.serveIfLambda(registering: testFunctions)
print("crucial-test-functions is a Lambda bootstrap for the tests: run it under crucial-lambda-emulator")
