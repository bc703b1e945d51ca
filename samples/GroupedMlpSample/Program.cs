// Trains a grouped regressor with the kernels' modules: a shared nn.Linear trunk whose output is split into N
// groups of D_in, then N per-group SwiGLU towers (one GroupedSwiGluMlp) and N per-group linear heads (one
// GroupedLinear), fitted with AdamW to the outputs of a teacher of the same shape. Usage: dotnet run --project samples/GroupedMlpSample [-- SEED]
using Orchestrator.Kernels.Modules;
using TorchSharp;
using static TorchSharp.torch;

const long Samples = 1024, Features = 16, Groups = 4, GroupInput = 8, Hidden = 32, TowerOutput = 8, GroupOutput = 2;
const int Steps = 300, ReportEvery = 50;

int seed = 0;
if (args.Length > 1 || (args.Length == 1 && !int.TryParse(args[0], out seed)))
{
    Console.Error.WriteLine($"usage: GroupedMlpSample [SEED]; '{string.Join(' ', args)}' is not one integer seed.");
    return 2;
}

// (B, D_feat) -> trunk (B, N*D_in) -> (B, N, D_in) -> towers (B, N, D_tower) -> heads (B, N, D_out)
nn.Module<Tensor, Tensor> Model(Generator generator) => nn.Sequential(
    ("trunk", nn.Linear(Features, Groups * GroupInput)),
    ("act", nn.SiLU()),
    ("split", nn.Unflatten(1, [Groups, GroupInput])),
    ("towers", new GroupedSwiGluMlp(Groups, GroupInput, Hidden, TowerOutput, generator: generator)),
    ("tower_act", nn.SiLU()),
    ("heads", new GroupedLinear(Groups, TowerOutput, GroupOutput, generator: generator)));

set_num_threads(1);                                             // a model this small gains nothing from more
random.manual_seed(seed);                                       // nn.Linear's initial weights
var generator = new Generator((ulong)seed);
var teacher = Model(generator);
var student = Model(generator);
var features = randn([Samples, Features], generator: generator);   // (S, D_feat)
Tensor targets;                                                     // (S, N, D_out), scaled to unit variance
using (no_grad())
{
    using var raw = teacher.call(features);
    targets = raw / raw.std();
}

var optimizer = optim.AdamW(student.parameters(), lr: 1e-2);
double first = double.NaN, last = double.NaN;
for (int step = 0; step <= Steps; step++)
{
    using var scope = NewDisposeScope();
    optimizer.zero_grad();
    var loss = nn.functional.mse_loss(student.call(features), targets);
    loss.backward();
    optimizer.step();
    last = loss.item<float>();
    if (step == 0) first = last;
    if (step % ReportEvery == 0) Console.WriteLine($"step {step,4}  loss {last:E4}");
}
Console.WriteLine($"loss fell from {first:E4} to {last:E4}");
return 0;
