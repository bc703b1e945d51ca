using System.Collections.Concurrent;
using Orchestrator.Kernels.Cuda;
using Orchestrator.Training;

namespace Orchestrator.Grains.Execution;

/// <summary>
/// One dedicated thread per device: all TorchSharp work for that device runs here, in submission order, so it
/// never blocks an Orleans scheduler thread and, for a GPU, always runs with the device's CUDA context current.
/// Work items are plain synchronous lambdas; they open their own dispose scopes, which therefore never span an await.
/// </summary>
public sealed class DeviceExecutor : ITensorThread, IDisposable
{
    readonly BlockingCollection<Action> queue = new();
    readonly Thread thread;
    readonly Lazy<CudaDevice>? cuda;   // null for the CPU; a failed CUDA init fails every work item with its error
    public string Device { get; }
    public TorchSharp.torch.Device TorchDevice { get; }

    public DeviceExecutor(string device)
    {
        Device = device;
        TorchDevice = TorchSharp.torch.device(device);
        if (TorchDevice.type == TorchSharp.DeviceType.CUDA) cuda = new(() => CudaDevice.For(TorchDevice.index));
        thread = new Thread(() => { foreach (var work in queue.GetConsumingEnumerable()) work(); })
        {
            IsBackground = true,
            Name = $"device {device}",
        };
        thread.Start();
    }

    /// <summary>Runs <paramref name="work"/> on the device thread; the continuation resumes on the caller's scheduler.</summary>
    public Task<T> RunAsync<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        queue.Add(() =>
        {
            try
            {
                cuda?.Value.MakeCurrent();   // cheap; kernels launched through the driver API need it on this thread
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        return done.Task;
    }

    public Task RunAsync(Action work) => RunAsync(() => { work(); return true; });

    public void Dispose()
    {
        queue.CompleteAdding();
        thread.Join();
        queue.Dispose();
    }
}
