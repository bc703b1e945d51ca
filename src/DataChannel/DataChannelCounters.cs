namespace Orchestrator.DataChannel;

/// <summary>
/// What a server refused and what it allocated so far, and what it holds now: the evidence that refused peers and
/// transfers cost it no memory.
/// </summary>
/// <param name="RefusedConnections">Connections closed at the handshake (wrong secret, wrong protocol, timeout, closed).</param>
/// <param name="RefusedTransfers">Transfers refused at their first frame: not announced, or beyond the holding limits.</param>
/// <param name="AllocatedTransfers">Transfers whose tensor was allocated (at their first frame).</param>
/// <param name="HeldTransfers">Tensors held for a waiter or still arriving.</param>
/// <param name="HeldBytes">Their bytes.</param>
internal readonly record struct DataChannelCounters(long RefusedConnections, long RefusedTransfers, long AllocatedTransfers, int HeldTransfers, long HeldBytes);
