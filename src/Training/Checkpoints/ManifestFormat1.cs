using System.Text.Json.Nodes;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// Reads manifests of format 1, which listed each shard's group range and file twice: as firstGroup, groupCount,
/// file, bytes and sha256, and again as "groups" {first, count, end} and "content" {file, bytes, sha256}. The copies
/// go before the manifest is bound (which refuses fields it does not know); the fields that format 2 keeps describe
/// the same shard, and they are what gets checked.
/// </summary>
static class ManifestFormat1
{
    public const int Version = 1;
    static readonly string[] RepeatedShardFields = ["groups", "content"];

    /// <summary>The manifest <paramref name="root"/> with format 1's repeated shard fields removed; any other manifest as it is.</summary>
    public static JsonNode? Upgraded(JsonNode? root)
    {
        if (root is not JsonObject manifest || !IsFormat1(manifest) || manifest["shards"] is not JsonArray shards) return root;
        foreach (var shard in shards.OfType<JsonObject>())
            foreach (var field in RepeatedShardFields)
                shard.Remove(field);
        return manifest;
    }

    static bool IsFormat1(JsonObject manifest) =>
        manifest["formatVersion"] is JsonValue version && version.TryGetValue(out int format) && format == Version;
}
