import CrucialServer

await CrucialServerCommand.main(registering: [])
