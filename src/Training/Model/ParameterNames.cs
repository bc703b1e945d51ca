namespace Orchestrator.Training;

/// <summary>Names of the model's tensors: init seeds, exported parameters and checkpoint keys.</summary>
public static class ParameterNames
{
    public const string TrunkWeight = "trunk.weight";          // (D_feat, N*D_in)
    public const string TrunkBias = "trunk.bias";              // (N*D_in)
    public const string TowerGateUp = "towers.w_gate_up";      // (N, D_in, 2H)
    public const string TowerDown = "towers.w_down";           // (N, H, D_out)
}
