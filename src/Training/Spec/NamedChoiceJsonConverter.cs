using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orchestrator.Training;

/// <summary>
/// A field of a closed set in JSON (spec files, checkpoint manifests, Orleans messages): read by any name users type
/// for a member, written by its canonical one. A value it refuses is a <see cref="JobSpecException"/> naming the field
/// and the choices, as <see cref="JobSpec.Validate"/> reports.
/// </summary>
public abstract class NamedChoiceJsonConverter<T>(string field, string what, string choices) : JsonConverter<T> where T : struct
{
    protected abstract bool TryParse(string? name, out T value);

    protected abstract string Name(T value);

    // Value types reach the converter even for a JSON null, which is then named here rather than read as a default.
    public override bool HandleNull => true;

    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null)
            throw new JobSpecException(field, "is missing (null); leave the field out for its default.");
        if (reader.TokenType != JsonTokenType.String)
            throw new JobSpecException(field, $"a {what} is a name (one of {choices}), not a JSON {reader.TokenType}.");
        string? name = reader.GetString();
        return TryParse(name, out var value) ? value : throw new JobSpecException(field, $"'{name}' is not a {what}; use one of {choices}.");
    }

    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(Name(value));
}
