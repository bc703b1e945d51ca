using System.ComponentModel;
using System.Globalization;

namespace Orchestrator.Client.Commands;

/// <summary>
/// Reads an option whose value names a member of a closed set (a dtype, a transport, a loss) with <see cref="Parse"/>,
/// which throws a <see cref="FormatException"/> telling a refused value the choices (the default converters accept
/// numbers and say "Failed to convert 'tcp' to Nullable`1").
/// </summary>
public abstract class OptionNameConverter<T> : TypeConverter
{
    protected abstract T Parse(string text);

    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType) =>
        sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) =>
        value is string text ? Parse(text) : base.ConvertFrom(context, culture, value);
}
