using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Orchestrator.Grains.Placement;
using Orchestrator.Training;

namespace Orchestrator.Grains.Observability;

/// <summary>
/// Gives every log event written while a coordinator or worker grain handles a call the properties Job, Worker and
/// Step (as a logging scope, which Serilog turns into properties). The coordinator's next step number travels to its
/// workers in the request context, so a worker's events during step 12 carry Step = 12 too. At Debug level it also
/// logs each such call with its duration.
/// </summary>
public sealed class GrainLogContextFilter(ILogger<GrainLogContextFilter> log) : IIncomingGrainCallFilter
{
    public const string StepKey = "orchestrator.step";

    /// <summary>Per coordinator activation: the number of the step its next StepAsync runs.</summary>
    readonly ConditionalWeakTable<object, StrongBox<long>> nextStep = new();

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        switch (context.Grain)
        {
            case ICoordinatorGrain:
                await InvokeCoordinator(context);
                break;
            case IWorkerGrain:
                var key = context.TargetId.Key.ToString()!;
                var scope = new Dictionary<string, object> { ["Worker"] = key };
                if (TryParseWorker(key) is { } worker) scope["Job"] = worker.Job;
                if (RequestContext.Get(StepKey) is long step) scope["Step"] = step;
                using (log.BeginScope(scope)) await Timed(context);
                break;
            default:
                await context.Invoke();
                break;
        }
    }

    async Task InvokeCoordinator(IIncomingGrainCallContext context)
    {
        var next = nextStep.GetOrCreateValue(context.Grain);
        var scope = new Dictionary<string, object> { ["Job"] = context.TargetId.Key.ToString()! };
        bool stepping = context.InterfaceMethod.Name == nameof(ICoordinatorGrain.StepAsync);
        if (stepping)
        {
            scope["Step"] = next.Value;
            RequestContext.Set(StepKey, next.Value);
        }
        try
        {
            using (log.BeginScope(scope)) await Timed(context);
        }
        finally
        {
            if (stepping) RequestContext.Remove(StepKey);
        }
        switch (context.Result)
        {
            case StepMetrics metrics: next.Value = metrics.Step + 1; break;
            case JobStatus status: next.Value = status.StepsDone; break;
        }
    }

    async Task Timed(IIncomingGrainCallContext context)
    {
        if (!log.IsEnabled(LogLevel.Debug))
        {
            await context.Invoke();
            return;
        }
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        await context.Invoke();
        log.LogDebug("Grain call {Method} took {Ms:F2} ms", context.InterfaceMethod.Name,
            System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }

    static WorkerKey? TryParseWorker(string key)
    {
        try
        {
            return WorkerKey.Parse(key);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
