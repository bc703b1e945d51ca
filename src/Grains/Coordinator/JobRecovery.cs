using Microsoft.Extensions.Logging;

namespace Orchestrator.Grains;

/// <summary>
/// Rebuilds a job that lost workers with their silos, without those silos: the survivors are stopped, membership is
/// given time to declare the lost silos dead (until then the grain directory may still route to them), and every shard
/// and the trunk are built again from the newest intact checkpoint (from the seed when there is none yet), the groups
/// spread over the devices left. Training continues at the checkpoint's step, and since batch i depends only on i, the
/// result equals a run that was never interrupted. Some workers may have applied the failed step's update and others
/// not: only a checkpoint is consistent again.
/// </summary>
internal sealed class JobRecovery(JobLauncher launcher, JobCheckpoints checkpoints, IClusterMembershipService membership, ILogger log)
{
    const int MaxRecoveries = 8;

    /// <summary>How long a recovery may wait for membership to declare lost silos dead and for the survivors to settle.</summary>
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    /// <summary>Silos whose workers were lost; never used again by this job.</summary>
    public HashSet<string> Excluded { get; } = [];

    /// <summary>How many times the job was rebuilt.</summary>
    public int Count { get; private set; }

    public bool CanRecover => Count < MaxRecoveries;

    /// <summary>The job rebuilt without <paramref name="lostSilos"/>, and the checkpoint's step it continues from (null: from the seed).</summary>
    public async Task<(RunningJob Job, long? From)> RebuildAsync(RunningJob lost, IReadOnlyCollection<string> lostSilos)
    {
        var name = lost.Spec.Name;
        Excluded.UnionWith(lostSilos);
        try
        {
            // Only the survivors are stopped: a call to a lost worker would wait for its silo.
            await launcher.ReleaseAsync(lost, lost.Workers.Where(w => !Excluded.Contains(w.Silo)).ToArray());
        }
        catch (Exception e)   // a worker may die while we stop it; its silo's membership will catch up
        {
            log.LogWarning(e, "Job {Job}: could not stop every surviving worker before recovering", name);
        }
        var deadline = DateTime.UtcNow + Timeout;
        await WaitUntilGone(lostSilos, deadline);
        var store = lost.Checkpoints;
        var restore = store is null ? null : await Task.Run(() => checkpoints.NewestIntact(store));
        while (true)
        {
            try
            {
                var rebuilt = await launcher.BuildAsync(lost.Spec, store, restore, Excluded);
                Count++;
                return (rebuilt, restore?.Manifest.Step);
            }
            catch (Exception e) when (WorkersLostException.IsSiloLoss(e) && DateTime.UtcNow < deadline)
            {
                log.LogInformation("Job {Job}: the cluster is still settling ({Problem}); retrying", name, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
    }

    /// <summary>Waits until no silo in <paramref name="silos"/> is active; throws a clear error at the deadline.</summary>
    async Task WaitUntilGone(IReadOnlyCollection<string> silos, DateTime deadline)
    {
        while (membership.CurrentSnapshot.Members.Values.Any(m => m.Status == SiloStatus.Active && silos.Contains(m.Name)))
        {
            if (DateTime.UtcNow >= deadline)
                throw new TimeoutException($"silos {string.Join(", ", silos)} stopped answering but were not declared dead within " +
                                           $"{Timeout.TotalSeconds:F0} s; the job cannot be rebuilt safely.");
            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }
    }
}
