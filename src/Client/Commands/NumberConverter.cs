using System.ComponentModel;
using System.Globalization;
using System.Numerics;
using Orchestrator.Grains.Hosting;

namespace Orchestrator.Client.Commands;

/// <summary>
/// Reads a number option's value, refusing one that is not a number of the option's type, or does not fit it, with
/// <see cref="OptionValueException"/> saying what the option takes (the default converters say "Failed to convert
/// '99999999999' to Nullable`1", or "99999999999 is not a valid value for Int32. (Parameter 'value')").
/// </summary>
public abstract class NumberConverter<T> : TypeConverter where T : struct, INumber<T>
{
    /// <summary>What the option takes, as it ends "--steps must be ...".</summary>
    protected abstract string Takes { get; }

    protected virtual NumberStyles Styles => NumberStyles.Integer;

    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType) =>
        sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) => value switch
    {
        string text => T.TryParse(text.Trim(), Styles, CultureInfo.InvariantCulture, out T number) && T.IsFinite(number)
            ? number
            : throw new OptionValueException(Takes),
        T number => number,   // a [DefaultValue] already of the option's type
        _ => base.ConvertFrom(context, culture, value),
    };
}

/// <summary>An int option: a whole number that fits 32 bits.</summary>
public sealed class WholeNumberConverter : NumberConverter<int>
{
    protected override string Takes => ValueWords.WholeNumber<int>();
}

/// <summary>A long option (seeds, dimensions of the kernel benchmark): a whole number that fits 64 bits.</summary>
public sealed class LongWholeNumberConverter : NumberConverter<long>
{
    protected override string Takes => ValueWords.WholeNumber<long>();
}

/// <summary>A double option (rates, fractions, norms): a finite number, "0.01" or "1e-3".</summary>
public sealed class RealNumberConverter : NumberConverter<double>
{
    protected override string Takes => ValueWords.Number;

    protected override NumberStyles Styles => NumberStyles.Float;
}
