using System.Text.Json.Serialization;

namespace Orchestrator.Training;

/// <summary>
/// How activations reach workers on other silos (<see cref="JobSpec.Transport"/>), named in JSON and on the command
/// line as <see cref="EnumNames"/> writes them: auto, message, channel, process, ipc. Workers in the coordinator's silo
/// always get references.
/// </summary>
[JsonConverter(typeof(TransportChoiceJsonConverter))]
public enum TransportChoice
{
    /// <summary>For GPU workers' slices of 1 MiB or more: a reference to silos of the coordinator's process, CUDA IPC to
    /// silo processes of its host, the TCP data channel to other hosts; Orleans messages otherwise.</summary>
    Auto,
    /// <summary>The bytes in the Orleans message, to any silo.</summary>
    Message,
    /// <summary>The TCP data channel.</summary>
    Channel,
    /// <summary>A reference, to silos of the coordinator's process.</summary>
    Process,
    /// <summary>CUDA IPC, to GPU workers in silo processes of the coordinator's host.</summary>
    Ipc,
}
