using Orchestrator.Training;

namespace Orchestrator.Grains;

/// <summary>Carries a <see cref="JobSpecException"/> (from the Orleans-free training library) through grain calls.</summary>
[GenerateSerializer]
public struct JobSpecExceptionSurrogate
{
    [Id(0)] public string Field;
    [Id(1)] public string Problem;
}

[RegisterConverter]
public sealed class JobSpecExceptionConverter : IConverter<JobSpecException, JobSpecExceptionSurrogate>
{
    public JobSpecExceptionSurrogate ConvertToSurrogate(in JobSpecException value) => new() { Field = value.Field, Problem = value.Problem };

    public JobSpecException ConvertFromSurrogate(in JobSpecExceptionSurrogate surrogate) => new(surrogate.Field, surrogate.Problem);
}
