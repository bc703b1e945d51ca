using System.Text;
using Orchestrator.Client.TensorBoard;
using static Orchestrator.Cluster.Tests.EventFileRecords;

namespace Orchestrator.Cluster.Tests;

/// <summary>The event files TensorBoard reads: TFRecord framing with CRC-32C, Event protobufs with Unix-second wall times.</summary>
public sealed class TensorBoardEventFileTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("orchestrator-tb-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void CRC_32C_matches_the_standard_check_value()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
        Assert.Equal(0u, Crc32C.Compute([]));
    }

    [Fact]
    public void Scalars_text_and_hparams_are_framed_records_with_Unix_wall_times()
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_764_680_000_250);
        string path;
        using (var writer = new EventFileWriter(directory, () => now))
        {
            path = writer.Path;
            writer.Scalar("train/loss", 0.125, step: 7);
            writer.Text("job/spec", "hello", step: 0);
            writer.HParams(new Dictionary<string, object> { ["lr"] = 0.01, ["dtype"] = "bfloat16", ["clip"] = true });
            writer.HParamsEnd(succeeded: true);
        }
        Assert.StartsWith("events.out.tfevents.1764680000.", Path.GetFileName(path));
        var events = Records(File.ReadAllBytes(path)).Select(Fields).ToList();
        Assert.Equal(5, events.Count);
        Assert.All(events, e => Assert.Equal(1_764_680_000.25, BitConverter.Int64BitsToDouble((long)e[1][0].Fixed)));
        Assert.Equal("brain.Event:2", events[0][3][0].Text);

        var scalar = Fields(events[1][5][0].Bytes)[1][0].Bytes;   // Event.summary.value[0]
        Assert.Equal(7UL, events[1][2][0].Varint);
        Assert.Equal("train/loss", Fields(scalar)[1][0].Text);
        Assert.Equal(0.125f, BitConverter.Int32BitsToSingle((int)Fields(scalar)[2][0].Fixed));

        var text = Fields(Fields(events[2][5][0].Bytes)[1][0].Bytes);
        Assert.Equal("hello", Fields(text[8][0].Bytes)[8][0].Text);                           // TensorProto.string_val
        Assert.Equal("text", Fields(Fields(text[9][0].Bytes)[1][0].Bytes)[1][0].Text);        // plugin_name

        var hparams = Fields(Fields(events[3][5][0].Bytes)[1][0].Bytes);
        Assert.Equal("_hparams_/session_start_info", hparams[1][0].Text);
        var plugin = Fields(Fields(hparams[9][0].Bytes)[1][0].Bytes);
        Assert.Equal("hparams", plugin[1][0].Text);
        var start = Fields(Fields(plugin[2][0].Bytes)[3][0].Bytes);
        var entries = start[1].Select(e => Fields(e.Bytes)).ToDictionary(e => e[1][0].Text, e => Fields(e[2][0].Bytes));
        Assert.Equal(0.01, BitConverter.Int64BitsToDouble((long)entries["lr"][2][0].Fixed));
        Assert.Equal("bfloat16", entries["dtype"][3][0].Text);
        Assert.Equal(1UL, entries["clip"][4][0].Varint);
        var end = Fields(Fields(Fields(Fields(Fields(events[4][5][0].Bytes)[1][0].Bytes)[9][0].Bytes)[1][0].Bytes)[2][0].Bytes)[4][0].Bytes;
        Assert.Equal(1UL, Fields(end)[1][0].Varint);   // SessionEndInfo.status SUCCESS
    }
}
