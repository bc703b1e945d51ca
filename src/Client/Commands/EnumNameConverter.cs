using System.ComponentModel;
using System.Globalization;
using Orchestrator.Training;

namespace Orchestrator.Client.Commands;

/// <summary>
/// Reads an option that names a member of a closed set (--transport message, --loss bce) as <see cref="EnumNames"/>
/// names it, case-insensitively; a refused value is told the choices (the default converter accepts numbers and says
/// "Failed to convert 'tcp' to Nullable`1").
/// </summary>
public sealed class EnumNameConverter<T> : TypeConverter where T : struct, Enum
{
    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType) =>
        sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) =>
        value is not string text ? base.ConvertFrom(context, culture, value)
        : EnumNames.TryParse(text, out T member) ? member
        : throw new FormatException($"'{text}' is not one of {EnumNames.List<T>()}.");
}
