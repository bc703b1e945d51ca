using System.ComponentModel;
using System.Globalization;

namespace Orchestrator.Client.Commands;

/// <summary>
/// Reads an int option's value, saying in words what is wrong with one that is not a whole number or does not fit
/// (the default converter's message is "Failed to convert '99999999999' to Nullable`1").
/// </summary>
public sealed class WholeNumberConverter : Int32Converter
{
    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
    {
        if (value is not string text) return base.ConvertFrom(context, culture, value);
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long number))
            return number is >= int.MinValue and <= int.MaxValue
                ? (int)number
                : throw new FormatException($"'{text}' is too large: the most this option takes is {int.MaxValue:N0}.");
        throw new FormatException($"'{text}' is not a whole number.");
    }
}
