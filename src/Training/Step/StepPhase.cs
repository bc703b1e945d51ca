namespace Orchestrator.Training;

/// <summary>The phases of a training step in the order the single-process trainer queues them.</summary>
public enum StepPhase
{
    Data,             // the batch onto the device
    TrunkForward,     // features @ W + b, silu
    TowersForward,    // the grouped SwiGLU MLP forward
    Loss,             // MSE and dY, the verdict copied to the host
    TowersBackward,   // the grouped SwiGLU MLP backward: dX and the weight gradients
    TrunkBackward,    // silu', dW and db, the trunk's AdamW step
    TowersAdamW,      // the towers' AdamW step, once the verdict accepted the step
}
