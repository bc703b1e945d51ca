namespace Orchestrator.Training;

/// <summary>The contiguous groups [First, First + Count) that one worker owns.</summary>
public readonly record struct GroupRange(int First, int Count)
{
    public int End => First + Count;
    public override string ToString() => $"[{First}, {End})";
}
