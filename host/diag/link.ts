/**
 * MessageLink: a channel of whole diagnostic messages between a tester and one ECU, whatever carries them (ISO-TP on
 * CAN or CAN FD, J1939 transport). UDS (ISO 14229) and OBD-II (SAE J1979) are written against this, so the services
 * do not know how a message is segmented, and a test can join two links without a bus.
 */
export interface MessageLink {
  /** Sends one whole message (segmented by the transport as needed); resolves once the last frame is on the bus. */
  send(payload: Uint8Array): Promise<void>;
  /**
   * The next whole message received, or a rejection (a named transport error, or a timeout after `timeoutMs`).
   * A transport error ends that message only: the link stays usable.
   */
  receive(timeoutMs: number): Promise<Uint8Array>;
  /** Stops the link; pending receives reject. Idempotent. */
  close(): Promise<void>;
}
