extension Frame {
    /// The frame's message name, for error messages.
    package var kindName: String {
        switch self {
        case .hello: "Hello"
        case .helloReply: "HelloReply"
        case .invoke: "Invoke"
        case .result: "Result"
        case .remove: "Remove"
        case .ping: "Ping"
        case .listObjects: "ListObjects"
        case .objectList: "ObjectList"
        case .serverInfo: "ServerInfo"
        case .keepAlive: "KeepAlive"
        case .endSession: "EndSession"
        case .getObject: "GetObject"
        case .loadPlugin: "LoadPlugin"
        case .replicate: "Replicate"
        case .transferDone: "TransferDone"
        case .challenge: "Challenge"
        case .authenticate: "Authenticate"
        case .offer: "Offer"
        case .acceptLoss: "AcceptLoss"
        case .cancelRun: "CancelRun"
        }
    }
}
