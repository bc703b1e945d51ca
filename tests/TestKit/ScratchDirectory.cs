namespace Orchestrator.TestKit;

/// <summary>A fresh temporary directory for a test's files, deleted with the test class.</summary>
public sealed class ScratchDirectory : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("orchestrator-tests-").FullName;
    public string NewFile(string extension = ".safetensors") => System.IO.Path.Combine(Root, Guid.NewGuid() + extension);
    public void Dispose() => Directory.Delete(Root, recursive: true);
}
