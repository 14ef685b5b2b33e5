import NIOCore
import SwitchboardProtocol

typealias PromptEventProducer = NIOThrowingAsyncSequenceProducer<
    PromptEvent,
    any Error,
    NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark,
    PromptStreamDelegate
>

/// Connects a prompt stream's consumer side back to the connection.
///
/// NIO calls these from arbitrary threads (usually the consumer's); both hop onto the
/// event loop, where the call state lives. After the call ended normally there is
/// nothing to do, which the ticket's atomic flag tells without a hop.
struct PromptStreamDelegate: NIOAsyncSequenceProducerDelegate {
    let handler: NIOLoopBound<ClientHandler>
    let ticket: CallTicket

    /// The consumer drained the buffer below the low watermark: resume reading.
    func produceMore() {
        if self.ticket.hasEnded { return }
        let handler = self.handler
        let ticket = self.ticket
        handler.eventLoop.execute {
            handler.value.resumeReading(for: ticket)
        }
    }

    /// The consumer went away (broke out of the loop, dropped the iterator, or its task
    /// was cancelled) before the call ended: cancel it on the server.
    func didTerminate() {
        if self.ticket.hasEnded { return }
        let handler = self.handler
        let ticket = self.ticket
        handler.eventLoop.execute {
            handler.value.cancel(
                ticket,
                error: SwitchboardError(code: .cancelled, message: "cancelled by the client")
            )
        }
    }
}
