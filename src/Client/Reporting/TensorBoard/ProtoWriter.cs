using Google.Protobuf;

namespace Orchestrator.Client.TensorBoard;

/// <summary>
/// Protobuf fields by number over Google.Protobuf's <see cref="CodedOutputStream"/>, with nested messages written
/// length-delimited: enough to write the few TensorBoard messages without generated classes.
/// </summary>
public sealed class ProtoWriter
{
    readonly CodedOutputStream output;

    ProtoWriter(CodedOutputStream output) => this.output = output;

    public static ReadOnlyMemory<byte> Encode(Action<ProtoWriter> fields)
    {
        using var buffer = new MemoryStream();
        using (var output = new CodedOutputStream(buffer, leaveOpen: true)) fields(new ProtoWriter(output));
        return buffer.ToArray();
    }

    public void WriteDouble(int field, double value) => Tagged(field, WireFormat.WireType.Fixed64).WriteDouble(value);
    public void WriteFloat(int field, float value) => Tagged(field, WireFormat.WireType.Fixed32).WriteFloat(value);
    public void WriteInt64(int field, long value) => Tagged(field, WireFormat.WireType.Varint).WriteInt64(value);
    public void WriteInt32(int field, int value) => Tagged(field, WireFormat.WireType.Varint).WriteInt32(value);
    public void WriteBool(int field, bool value) => Tagged(field, WireFormat.WireType.Varint).WriteBool(value);
    public void WriteString(int field, string value) => Tagged(field, WireFormat.WireType.LengthDelimited).WriteString(value);
    public void WriteBytes(int field, ByteString value) => Tagged(field, WireFormat.WireType.LengthDelimited).WriteBytes(value);
    public void WriteBytes(int field, ReadOnlyMemory<byte> value) => WriteBytes(field, ByteString.CopyFrom(value.Span));
    public void WriteMessage(int field, Action<ProtoWriter> fields) => WriteBytes(field, Encode(fields));

    CodedOutputStream Tagged(int field, WireFormat.WireType type)
    {
        output.WriteTag(field, type);
        return output;
    }
}
