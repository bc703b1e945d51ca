namespace Orchestrator.Cluster.Tests;

/// <summary>The client and the silo ship what linux-x64 needs: no osx or win natives, no Roslyn from Orleans' code generator.</summary>
public class ShippedFilesTests
{
    [Fact]
    public void The_client_ships_linux_x64_natives_and_no_build_tooling() => ShippedFiles.AssertLinuxOnly(Build.ClientDll);

    [Fact]
    public void The_silo_ships_linux_x64_natives_and_no_build_tooling() => ShippedFiles.AssertLinuxOnly(Build.SiloDll);
}
