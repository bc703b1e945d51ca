using System.Collections;
using System.Reflection;
using Orchestrator.Grains.Hosting;

namespace Orchestrator.Silo;

/// <summary>
/// The configuration keys the silo reads, taken from its options classes, so that a <c>--Section:Key</c> switch can be
/// checked: a key nothing reads is a typo, not a setting. List entries are numbered (<c>Silo:PathRoots:0</c>).
/// Serilog's section is open (a level per log source, sinks), so every key under it passes.
/// </summary>
static class SiloConfigurationKeys
{
    const string OpenSection = "Serilog";

    /// <summary>Every key, lists with their first entry (":0"), e.g. Silo:Devices, Cluster:Tls:TrustedThumbprints:0.</summary>
    public static readonly IReadOnlyList<string> Known =
    [
        .. Keys(SiloHostOptions.Section, typeof(SiloHostOptions)),
        .. Keys(ClusterConnectionOptions.Section, typeof(ClusterConnectionOptions)),
        SiloLogging.FileKey,
        $"{OpenSection}:MinimumLevel:Default",
    ];

    static readonly HashSet<string> KnownSet = new(Known, StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether the silo reads <paramref name="key"/> (any case; list entries by any index).</summary>
    public static bool IsKnown(string key) =>
        key.StartsWith($"{OpenSection}:", StringComparison.OrdinalIgnoreCase) && key.Length > OpenSection.Length + 1
        || KnownSet.Contains(string.Join(':', key.Split(':').Select(part => part.Length > 0 && part.All(char.IsAsciiDigit) ? "0" : part)));

    /// <summary>The keys an options class binds: its settable properties, lists numbered, nested options classes recursed into.</summary>
    static IEnumerable<string> Keys(string prefix, Type options) =>
        options.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true })
            .SelectMany(p => IsScalar(p.PropertyType) ? [$"{prefix}:{p.Name}"]
                : p.PropertyType.IsAssignableTo(typeof(IList)) ? [$"{prefix}:{p.Name}:0"]
                : Keys($"{prefix}:{p.Name}", p.PropertyType));

    static bool IsScalar(Type type) => type == typeof(string) || type.IsValueType;
}
