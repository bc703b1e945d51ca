using Microsoft.Extensions.Hosting;
using Orchestrator.Grains.Hosting;
using Serilog;
using Serilog.Formatting.Compact;

namespace Orchestrator.Silo;

/// <summary>
/// Serilog for the silo: levels from the "Serilog" section, every event tagged with the silo's name, Job/Worker/Step
/// from the grain call log context, console always and a daily-rolled JSON file when Logging:File is set.
/// </summary>
static class SiloLogging
{
    public const string FileKey = "Logging:File";

    public static void AddSiloLogging(this IHostApplicationBuilder builder, SiloHostOptions silo)
    {
        string? file = builder.Configuration[FileKey];
        builder.Services.AddSerilog(logger =>
        {
            logger.ReadFrom.Configuration(builder.Configuration)
                .Enrich.FromLogContext()
                .Enrich.WithProperty("Silo", silo.SiloName)
                .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Silo} {Message:lj} {Properties:j}{NewLine}{Exception}");
            if (!string.IsNullOrWhiteSpace(file))
                logger.WriteTo.File(new CompactJsonFormatter(), file, rollingInterval: RollingInterval.Day, retainedFileCountLimit: 14);
        });
    }
}
