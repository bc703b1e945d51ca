using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orchestrator.Grains.Hosting;

namespace Orchestrator.Silo;

/// <summary>
/// Stops the silo once the process that started it is gone: the silo processes of a client's local cluster hold GPU
/// memory and ports, and must not outlive a client that was killed before it could stop them.
/// </summary>
sealed class ParentProcessWatch(int parent, IHostApplicationLifetime lifetime, ILogger<ParentProcessWatch> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        while (await timer.WaitForNextTickAsync(stopping))
        {
            if (IsRunning(parent)) continue;
            log.LogWarning("Process {Parent}, which started this silo, is gone; stopping", parent);
            lifetime.StopApplication();
            return;
        }
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}

static class ParentProcessWatchHosting
{
    /// <summary>Watches Silo:ParentProcessId when it is set.</summary>
    public static void AddParentProcessWatch(this IHostApplicationBuilder builder, SiloHostOptions silo)
    {
        if (silo.ParentProcessId > 0)
            builder.Services.AddHostedService(services => ActivatorUtilities.CreateInstance<ParentProcessWatch>(services, silo.ParentProcessId));
    }
}
