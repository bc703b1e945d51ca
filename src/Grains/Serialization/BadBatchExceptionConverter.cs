using Orchestrator.Training;

namespace Orchestrator.Grains;

/// <summary>Carries a <see cref="BadBatchException"/> (from the Orleans-free training library) through grain calls.</summary>
[GenerateSerializer]
public struct BadBatchExceptionSurrogate
{
    [Id(0)] public string Message;
}

[RegisterConverter]
public sealed class BadBatchExceptionConverter : IConverter<BadBatchException, BadBatchExceptionSurrogate>
{
    public BadBatchExceptionSurrogate ConvertToSurrogate(in BadBatchException value) => new() { Message = value.Message };

    public BadBatchException ConvertFromSurrogate(in BadBatchExceptionSurrogate surrogate) => new(surrogate.Message);
}
