using System.Diagnostics;
using Orchestrator.Grains.Execution;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Grains;

/// <summary>
/// A job's workers as the towers of one <see cref="TrainingStep"/>: each phase sends every worker its slice of the
/// (B, N, D) input along the group dimension and gathers the replies into one tensor on the trunk's device. Each
/// worker's slice is packed, sent and its reply unpacked into place on its own, so one worker's scatter and gather
/// overlap the others' compute. Calls that failed because their silo is gone become one <see cref="WorkersLostException"/>.
/// Counts the executor time spent packing and unpacking and the bytes each transport moved.
/// </summary>
internal sealed class WorkerExchange(IReadOnlyList<JobWorker> workers, DeviceExecutor trunk, IClusterMembershipService membership,
    long inputWidth, long outputWidth) : IStepTowers
{
    public double ScatterMs { get; private set; }   // written on the trunk's executor only
    public double GatherMs { get; private set; }    // likewise
    public Dictionary<string, long> Bytes { get; } = [];   // written on the grain's scheduler only

    public Task<Tensor> ForwardAsync(Tensor x) => ExchangeAsync(x, outputWidth, (worker, slice) => worker.ForwardAsync(slice));

    /// <summary>The workers compute gradients and dX and keep their AdamW update waiting.</summary>
    public Task<Tensor> BackwardAsync(Tensor dY) => ExchangeAsync(dY, inputWidth, (worker, slice) => worker.BackwardAsync(slice));

    public async Task<double> PendingSquaredNormAsync() => (await Task.WhenAll(workers.Select(w => w.Grain.PendingSquaredNormAsync()))).Sum();

    /// <summary>
    /// Unscaled, nothing to send: a worker applies an accepted update with its next use of the weights (forward,
    /// checkpoint, export). A clipped update is applied now, scaled.
    /// </summary>
    public Task AcceptAsync(double gradientScale) =>
        gradientScale == 1 ? Task.CompletedTask : Task.WhenAll(workers.Select(w => w.Grain.AcceptAsync(gradientScale)));

    public Task<Tensor> InferAsync(Tensor x) => ExchangeAsync(x, outputWidth, (worker, slice) => worker.InferAsync(slice));

    public Task DiscardAsync() => Task.WhenAll(workers.Select(w => w.Grain.DiscardAsync()));

    async Task<Tensor> ExchangeAsync(Tensor input, long width, Func<IWorkerGrain, TensorPayload, Task<TensorPayload>> call)
    {
        var output = await trunk.RunAsync(() => empty([input.shape[0], input.shape[1], width], input.dtype, input.device).DetachFromDisposeScope());
        var calls = workers.Select(w => ExchangeWith(w, input, output, call)).ToArray();
        try
        {
            await Task.WhenAll(calls);
            return output;
        }
        catch (Exception e)
        {
            await trunk.RunAsync(output.Dispose);
            var active = membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.Name).ToHashSet();
            var lost = workers.Where((w, i) => calls[i].IsFaulted
                    && (WorkersLostException.IsSiloLoss(calls[i].Exception!.InnerException!) || !active.Contains(w.Silo)))
                .Select(w => w.Silo).Distinct().ToArray();
            if (lost.Length > 0) throw new WorkersLostException(lost, e);
            throw;
        }
    }

    /// <summary>One worker's part of an exchange; a payload nobody unpacked (the call failed) releases its tensor.</summary>
    async Task ExchangeWith(JobWorker w, Tensor input, Tensor output, Func<IWorkerGrain, TensorPayload, Task<TensorPayload>> call)
    {
        var request = await trunk.RunAsync(() =>
        {
            long start = Stopwatch.GetTimestamp();
            using var scope = NewDisposeScope();
            var packed = w.Transport.Pack(input.narrow(1, w.Groups.First, w.Groups.Count));
            ScatterMs += Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            return packed;
        });
        TensorPayload reply;
        try
        {
            reply = await call(w.Grain, request);
        }
        catch
        {
            request.Dispose();
            throw;
        }
        try
        {
            await trunk.RunAsync(() =>
            {
                long start = Stopwatch.GetTimestamp();
                using var scope = NewDisposeScope();
                output.narrow(1, w.Groups.First, w.Groups.Count).copy_(w.Transport.Unpack(reply, trunk.TorchDevice));
                GatherMs += Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            });
        }
        finally
        {
            reply.Dispose();
        }
        var kind = EnumNames.Of(w.Transport.Kind);
        Bytes[kind] = Bytes.GetValueOrDefault(kind) + request.Bytes + reply.Bytes;
    }
}
