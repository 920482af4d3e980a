import ArgumentParser
import Foundation

// SPEC §1: exit 0 after a normal shutdown, 1 on a runtime failure, 2 on a usage or config error.
// ArgumentParser uses 64 (EX_USAGE) for usage errors, so errors are mapped here.
/// A subcommand that does real work, run asynchronously.
protocol RunnableCommand {
    func execute() async throws
}

do {
    var command = try RosterCommand.parseAsRoot()
    // Dispatch through our own protocol: calling `run()` on an existential picks the synchronous
    // default (which prints help) instead of the async implementation.
    if let runnable = command as? any RunnableCommand {
        try await runnable.execute()
    } else {
        try command.run()
    }
} catch let error as ConfigError {
    FileHandle.standardError.write(Data("roster: \(error)\n".utf8))
    exit(2)
} catch {
    let code = RosterCommand.exitCode(for: error)
    if code == .success {
        RosterCommand.exit(withError: error)  // --help and --version print and exit 0
    }
    let message = RosterCommand.fullMessage(for: error)
    if !message.isEmpty { FileHandle.standardError.write(Data("roster: \(message)\n".utf8)) }
    exit(code == .validationFailure ? 2 : code.rawValue == 0 ? 1 : code.rawValue)
}
