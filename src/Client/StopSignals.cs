using System.Runtime.InteropServices;

namespace Orchestrator.Client;

/// <summary>
/// SIGINT (Ctrl+C), SIGTERM (systemd, Kubernetes) and SIGHUP (the terminal went away) while they are registered: the
/// first one received cancels <see cref="Stopping"/> (train stops at the next step boundary and saves), a second one
/// cancels <see cref="Aborting"/> (train leaves at once). Either way the process should exit with <see cref="ExitCode"/>,
/// 128 + the first signal's number, which is what a shell reports for a process that signal ended.
/// Disposing restores the default action (the process ends), so a command that is done stopping can still be killed.
/// </summary>
public sealed class StopSignals : IDisposable
{
    /// <summary>A signal this class handles, with its name and its number on Linux (PosixSignal's values are not those).</summary>
    public sealed record Signal(PosixSignal Posix, string Name, int Number);

    static readonly Signal[] Handled =
    [
        new(PosixSignal.SIGINT, "SIGINT", 2),
        new(PosixSignal.SIGTERM, "SIGTERM", 15),
        new(PosixSignal.SIGHUP, "SIGHUP", 1),
    ];

    readonly CancellationTokenSource stopping = new(), aborting = new();
    readonly PosixSignalRegistration[] registrations;
    readonly Action<Signal, bool> received;
    readonly Lock gate = new();
    Signal? first;

    /// <param name="received">Told of each signal as it arrives, with whether it is the second (the abort): for the user's message.</param>
    public StopSignals(Action<Signal, bool> received)
    {
        this.received = received;
        registrations = Handled.Select(s => PosixSignalRegistration.Create(s.Posix, context => Receive(s, context))).ToArray();
    }

    public CancellationToken Stopping => stopping.Token;
    public CancellationToken Aborting => aborting.Token;

    /// <summary>The first signal received (once <see cref="Stopping"/> is cancelled).</summary>
    public Signal First
    {
        get { lock (gate) return first ?? throw new InvalidOperationException("no signal was received."); }
    }

    /// <summary>128 + the first signal's number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).</summary>
    public int ExitCode => 128 + First.Number;

    void Receive(Signal signal, PosixSignalContext context)
    {
        context.Cancel = true;   // the command ends the process itself, after saving what it can
        bool again;
        lock (gate)
        {
            again = first is not null;
            first ??= signal;
        }
        received(signal, again);
        (again ? aborting : stopping).Cancel();
    }

    /// <summary>
    /// Unregisters; the token sources stay undisposed (they hold no timer), since a handler that was already running
    /// may still cancel them.
    /// </summary>
    public void Dispose()
    {
        foreach (var registration in registrations) registration.Dispose();
    }
}
