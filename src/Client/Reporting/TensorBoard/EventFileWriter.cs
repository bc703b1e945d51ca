using System.Buffers.Binary;
using Google.Protobuf;

namespace Orchestrator.Client.TensorBoard;

/// <summary>
/// A TensorBoard event file, written directly: each record is TFRecord-framed (length, its masked CRC-32C, an Event
/// protobuf, its masked CRC-32C) and flushed as it is written. TorchSharp's writer stamps events with .NET ticks and
/// whole seconds, which puts TensorBoard's time axis 20 centuries off; here wall times are Unix seconds with their
/// fraction. The protobuf fields are those of tensorflow/core/util/event.proto and summary.proto, and of the hparams
/// plugin's plugin_data.proto; Google.Protobuf encodes them.
/// </summary>
public sealed class EventFileWriter : IDisposable
{
    // Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5.
    // Summary: value = 1 (repeated). Summary.Value: tag = 1, simple_value = 2 (float), tensor = 8, metadata = 9.
    // SummaryMetadata: plugin_data = 1 { plugin_name = 1, content = 2 (bytes) }.
    readonly FileStream file;
    readonly Func<DateTimeOffset> clock;

    public string Path { get; }

    public EventFileWriter(string logDir, Func<DateTimeOffset>? clock = null)
    {
        this.clock = clock ?? (() => DateTimeOffset.UtcNow);
        Directory.CreateDirectory(logDir);
        Path = System.IO.Path.Combine(logDir,
            $"events.out.tfevents.{this.clock().ToUnixTimeSeconds()}.{Environment.MachineName}.{Environment.ProcessId}.orchestrator");
        file = new FileStream(Path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        Write(step: 0, e => e.WriteString(3, "brain.Event:2"));
    }

    /// <summary>A scalar of <paramref name="tag"/> at <paramref name="step"/> (TensorBoard's Scalars tab).</summary>
    public void Scalar(string tag, double value, long step) =>
        Write(step, e => e.WriteMessage(5, s => s.WriteMessage(1, v =>
        {
            v.WriteString(1, tag);
            v.WriteFloat(2, (float)value);
        })));

    /// <summary>Markdown text of <paramref name="tag"/> (the Text tab): a string tensor for the "text" plugin.</summary>
    public void Text(string tag, string markdown, long step) =>
        Write(step, e => e.WriteMessage(5, s => s.WriteMessage(1, v =>
        {
            v.WriteString(1, tag);
            // TensorProto: dtype = 1 (DT_STRING = 7), tensor_shape = 2 { dim = 2 { size = 1 } }, string_val = 8.
            v.WriteMessage(8, t =>
            {
                t.WriteInt32(1, 7);
                t.WriteMessage(2, shape => shape.WriteMessage(2, dim => dim.WriteInt64(1, 1)));
                t.WriteBytes(8, ByteString.CopyFromUtf8(markdown));
            });
            v.WriteMessage(9, metadata => metadata.WriteMessage(1, plugin => plugin.WriteString(1, "text")));
        })));

    /// <summary>
    /// The run's hyperparameters (numbers, strings or booleans) for the HParams tab: a session start, whose metrics
    /// TensorBoard takes from the run's scalars.
    /// </summary>
    public void HParams(IReadOnlyDictionary<string, object> hparams) =>
        HParamsSummary("_hparams_/session_start_info", data => data.WriteMessage(3, start =>
        {
            // SessionStartInfo: hparams = 1 (map<string, google.protobuf.Value>), start_time_secs = 5.
            foreach (var (name, value) in hparams)
                start.WriteMessage(1, entry =>
                {
                    entry.WriteString(1, name);
                    // google.protobuf.Value: number_value = 2, string_value = 3, bool_value = 4.
                    entry.WriteMessage(2, v =>
                    {
                        switch (value)
                        {
                            case bool b: v.WriteBool(4, b); break;
                            case string text: v.WriteString(3, text); break;
                            default: v.WriteDouble(2, Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture)); break;
                        }
                    });
                });
            start.WriteDouble(5, clock().ToUnixTimeMilliseconds() / 1000.0);
        }));

    /// <summary>The session's end for the HParams tab: SessionEndInfo status (1 success, 2 failure) and end time.</summary>
    public void HParamsEnd(bool succeeded) =>
        HParamsSummary("_hparams_/session_end_info", data => data.WriteMessage(4, end =>
        {
            end.WriteInt32(1, succeeded ? 1 : 2);
            end.WriteDouble(2, clock().ToUnixTimeMilliseconds() / 1000.0);
        }));

    /// <summary>A summary value carrying HParamsPluginData (version = 1 is 0; the session info in its field) as hparams plugin content.</summary>
    void HParamsSummary(string tag, Action<ProtoWriter> info) =>
        Write(0, e => e.WriteMessage(5, s => s.WriteMessage(1, v =>
        {
            v.WriteString(1, tag);
            v.WriteMessage(9, metadata => metadata.WriteMessage(1, plugin =>
            {
                plugin.WriteString(1, "hparams");
                plugin.WriteBytes(2, ProtoWriter.Encode(info));
            }));
        })));

    void Write(long step, Action<ProtoWriter> body)
    {
        var record = ProtoWriter.Encode(e =>
        {
            e.WriteDouble(1, clock().ToUnixTimeMilliseconds() / 1000.0);
            if (step != 0) e.WriteInt64(2, step);
            body(e);
        });
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)record.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Masked(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.Masked(record.Span));
        file.Write(header);
        file.Write(record.Span);
        file.Write(footer);
        file.Flush();
    }

    public void Dispose() => file.Dispose();
}
