using System.ComponentModel;
using System.Globalization;
using Orchestrator.Kernels;
using static TorchSharp.torch;

namespace Orchestrator.Client.Commands;

/// <summary>
/// Reads a dtype option's value (bfloat16, bf16, float32, ...: <see cref="DTypeNames"/>) into its ScalarType; a
/// refused one is told the names accepted (the default converter's message is "Failed to convert 'f8' to Nullable`1").
/// </summary>
public sealed class DTypeConverter : TypeConverter
{
    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType) =>
        sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) =>
        value is string text ? Parse(text) : base.ConvertFrom(context, culture, value);

    public static ScalarType Parse(string text) =>
        DTypeNames.TryParse(text, out var dtype) ? dtype : throw new FormatException(DTypeNames.Refusal(text));
}
