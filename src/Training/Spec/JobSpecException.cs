namespace Orchestrator.Training;

/// <summary>A job spec that cannot run. <see cref="Field"/> is the path of the offending field, e.g. "Shape.Groups".</summary>
public sealed class JobSpecException(string field, string problem) : ArgumentException($"{field}: {problem}", field)
{
    public string Field { get; } = field;
    public string Problem { get; } = problem;
    public override string Message => $"{Field}: {Problem}";   // without ArgumentException's "(Parameter ...)" suffix
}
