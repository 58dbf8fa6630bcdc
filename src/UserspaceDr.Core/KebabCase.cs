namespace UserspaceDr.Core;

/// <summary>The kebab-case form of an enum member's name, as counters, logs and metric labels show it ("TooShort" → "too-short").</summary>
public static class KebabCase
{
    public static string Of(string pascal)
    {
        ArgumentNullException.ThrowIfNull(pascal);
        var text = new System.Text.StringBuilder(pascal.Length + 8);
        for (int c = 0; c < pascal.Length; c++)
        {
            if (char.IsUpper(pascal[c]) && c > 0)
            {
                text.Append('-');
            }
            text.Append(char.ToLowerInvariant(pascal[c]));
        }
        return text.ToString();
    }

    public static string Of<TEnum>(TEnum value) where TEnum : struct, Enum => Of(value.ToString());
}
