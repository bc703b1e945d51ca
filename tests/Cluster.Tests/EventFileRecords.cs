using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using Orchestrator.Client.TensorBoard;

namespace Orchestrator.Cluster.Tests;

/// <summary>TensorBoard event files read back: the TFRecord framing checked, each Event protobuf's fields by number.</summary>
public static class EventFileRecords
{
    /// <summary>TFRecord payloads, each length and payload checked against its masked CRC-32C.</summary>
    public static IEnumerable<byte[]> Records(byte[] file)
    {
        for (int at = 0; at < file.Length;)
        {
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at));
            Assert.Equal(Crc32C.Masked(file.AsSpan(at, 8)), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 8)));
            var payload = file.AsSpan(at + 12, (int)length).ToArray();
            Assert.Equal(Crc32C.Masked(payload), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 12 + (int)length)));
            yield return payload;
            at += 16 + (int)length;
        }
    }

    public sealed record Field(ulong Varint, ulong Fixed, byte[] Bytes)
    {
        public string Text => Encoding.UTF8.GetString(Bytes);
    }

    /// <summary>A protobuf message's fields by number, decoded with Google.Protobuf's reader.</summary>
    public static Dictionary<int, List<Field>> Fields(byte[] message)
    {
        var fields = new Dictionary<int, List<Field>>();
        var input = new CodedInputStream(message);
        for (uint tag; (tag = input.ReadTag()) != 0;)
        {
            var field = WireFormat.GetTagWireType(tag) switch
            {
                WireFormat.WireType.Varint => new Field(input.ReadUInt64(), 0, []),
                WireFormat.WireType.Fixed64 => new Field(0, input.ReadFixed64(), []),
                WireFormat.WireType.Fixed32 => new Field(0, input.ReadFixed32(), []),
                WireFormat.WireType.LengthDelimited => new Field(0, 0, input.ReadBytes().ToByteArray()),
                var other => throw new InvalidDataException($"unexpected wire type {other}"),
            };
            int number = WireFormat.GetTagFieldNumber(tag);
            if (!fields.TryGetValue(number, out var list)) fields[number] = list = [];
            list.Add(field);
        }
        return fields;
    }

    /// <summary>Every summary value of an event file as (tag, step, simple_value or null when it is not a scalar).</summary>
    public static List<(string Tag, long Step, float? Scalar)> Values(string path) =>
        Records(File.ReadAllBytes(path)).Select(Fields).Where(e => e.ContainsKey(5))
            .SelectMany(e => Fields(e[5][0].Bytes).GetValueOrDefault(1, []).Select(v => Fields(v.Bytes)).Select(v =>
                (v[1][0].Text, e.TryGetValue(2, out var step) ? (long)step[0].Varint : 0,
                 v.TryGetValue(2, out var scalar) ? BitConverter.Int32BitsToSingle((int)scalar[0].Fixed) : (float?)null)))
            .ToList();
}
