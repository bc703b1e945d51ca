namespace Orchestrator.Training;

/// <summary><see cref="JobSpec.Transport"/> in JSON: its lower-case name (auto, message, ...), read case-insensitively; numbers are not names.</summary>
public sealed class TransportChoiceJsonConverter()
    : NamedChoiceJsonConverter<TransportChoice>(nameof(JobSpec.Transport), "transport", EnumNames.List<TransportChoice>())
{
    protected override bool TryParse(string? name, out TransportChoice value) => EnumNames.TryParse(name, out value);

    protected override string Name(TransportChoice value) => EnumNames.Of(value);
}
