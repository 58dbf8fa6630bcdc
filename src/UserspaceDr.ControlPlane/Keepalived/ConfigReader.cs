using System.IO.Enumeration;
using System.Text;

namespace UserspaceDr.ControlPlane.Keepalived;

/// <summary>
/// Reads keepalived.conf into statements (<see cref="ConfigNode"/>), as keepalived's parser.c reads it: words split at
/// white space; <c>@ID</c> / <c>@^ID</c> at the start of a line make it conditional (see <see cref="ConfigId"/>); a word
/// starting with '!' or '#' starts a comment to the end of the line; "double quotes" keep spaces
/// in one word; '{' and '}' are words of their own wherever they stand; a statement is the words of one line up to a
/// brace, and a '{' after it opens its block. <c>include PATTERN</c> (relative to the including file's folder, glob
/// characters * ? [..] in any part of the path) splices in the statements of every file it matches, in name order,
/// wherever it stands. Every error names its file and line.
/// </summary>
public static class ConfigReader
{
    /// <summary>Includes nested deeper than this are refused (a file including itself, directly or not).</summary>
    public const int MaxIncludeDepth = 8;

    /// <summary>Reads <paramref name="path"/> and everything it includes.</summary>
    public static IReadOnlyList<ConfigNode> ReadFile(string path, ICollection<ConfigWarning> warnings)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(warnings);
        return ReadFile(Path.GetFullPath(path), new ConfigPlace(path, 0), 0, warnings);
    }

    /// <summary>Reads configuration text that came from <paramref name="name"/> (includes resolve from the working folder).</summary>
    public static IReadOnlyList<ConfigNode> ReadText(string text, string name, ICollection<ConfigWarning> warnings)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(warnings);
        return Parse(text, name, Directory.GetCurrentDirectory(), 0, warnings);
    }

    private static List<ConfigNode> ReadFile(string fullPath, ConfigPlace from, int depth, ICollection<ConfigWarning> warnings)
    {
        string text;
        try
        {
            text = File.ReadAllText(fullPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(from, $"cannot read {fullPath}: {e.Message}");
        }
        return Parse(text, fullPath, Path.GetDirectoryName(fullPath) ?? "/", depth, warnings);
    }

    private static List<ConfigNode> Parse(string text, string file, string folder, int depth, ICollection<ConfigWarning> warnings)
    {
        var tokens = Tokenize(text, file);
        int position = 0;
        List<ConfigNode> nodes = ParseBlock(tokens, ref position, file, folder, depth, warnings, opener: null);
        return nodes;
    }

    private readonly record struct Token(string Text, bool Quoted, int Line, bool EndsLine)
    {
        public bool Is(string brace) => !Quoted && Text == brace;
    }

    /// <summary>The statements up to the '}' that closes <paramref name="opener"/> (or to the end of the file when it is null).</summary>
    private static List<ConfigNode> ParseBlock(List<Token> tokens, ref int position, string file, string folder, int depth,
        ICollection<ConfigWarning> warnings, ConfigPlace? opener)
    {
        var nodes = new List<ConfigNode>();
        while (position < tokens.Count)
        {
            Token first = tokens[position];
            var place = new ConfigPlace(file, first.Line);
            if (first.Is("}"))
            {
                if (opener is null)
                {
                    throw new ConfigException(place, "'}' closes no block");
                }
                position++;
                return nodes;
            }
            if (first.Is("{"))
            {
                throw new ConfigException(place, "'{' opens a block without a keyword before it");
            }

            // The keyword and its arguments: the rest of the line, up to a brace.
            position++;
            var arguments = new List<string>();
            bool lineEnded = first.EndsLine;
            while (!lineEnded && position < tokens.Count && !tokens[position].Is("{") && !tokens[position].Is("}"))
            {
                arguments.Add(tokens[position].Text);
                lineEnded = tokens[position].EndsLine;
                position++;
            }
            List<ConfigNode>? block = null;
            if (position < tokens.Count && tokens[position].Is("{"))
            {
                position++;
                block = ParseBlock(tokens, ref position, file, folder, depth, warnings, place);
            }

            if (first.Text == "include" && !first.Quoted)
            {
                if (arguments.Count != 1 || block is not null)
                {
                    throw new ConfigException(place, "include takes one file name or pattern");
                }
                nodes.AddRange(Include(arguments[0], place, folder, depth, warnings));
                continue;
            }
            nodes.Add(new ConfigNode(first.Text, arguments, block, place));
        }
        if (opener is ConfigPlace open)
        {
            throw new ConfigException(open, "this block is not closed ('}' missing before the end of the file)");
        }
        return nodes;
    }

    private static List<ConfigNode> Include(string pattern, ConfigPlace place, string folder, int depth, ICollection<ConfigWarning> warnings)
    {
        if (depth + 1 > MaxIncludeDepth)
        {
            throw new ConfigException(place, $"includes nest deeper than {MaxIncludeDepth} (does a file include itself?)");
        }
        string full = Path.IsPathRooted(pattern) ? pattern : Path.Combine(folder, pattern);
        List<string> files = Glob(full);
        if (files.Count == 0)
        {
            warnings.Add(new ConfigWarning(place, $"include {pattern}: no file matches"));
        }
        var nodes = new List<ConfigNode>();
        foreach (string path in files)
        {
            nodes.AddRange(ReadFile(path, place, depth + 1, warnings));
        }
        return nodes;
    }

    /// <summary>The files a glob(3) pattern matches, sorted as glob sorts them (by name).</summary>
    internal static List<string> Glob(string pattern)
    {
        string root = Path.GetPathRoot(pattern) is { Length: > 0 } r ? r : Directory.GetCurrentDirectory();
        string[] parts = pattern[(Path.GetPathRoot(pattern)?.Length ?? 0)..].Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = new List<string> { root };
        for (int i = 0; i < parts.Length; i++)
        {
            bool last = i == parts.Length - 1;
            string part = parts[i];
            var next = new List<string>();
            foreach (string folder in current)
            {
                if (!HasWildcard(part))
                {
                    string candidate = Path.Combine(folder, part);
                    if (last ? File.Exists(candidate) : Directory.Exists(candidate))
                    {
                        next.Add(candidate);
                    }
                    continue;
                }
                if (!Directory.Exists(folder))
                {
                    continue;
                }
                IEnumerable<string> entries = last ? Directory.EnumerateFiles(folder) : Directory.EnumerateDirectories(folder);
                foreach (string entry in entries)
                {
                    string name = Path.GetFileName(entry);
                    if (!name.StartsWith('.') && Matches(part, name))
                    {
                        next.Add(entry);
                    }
                }
            }
            next.Sort(StringComparer.Ordinal);
            current = next;
        }
        return current;
    }

    private static bool HasWildcard(string part) => part.AsSpan().IndexOfAny("*?[") >= 0;

    /// <summary>fnmatch(3) for one path component: * ? and bracket sets [abc] [a-z] [!x].</summary>
    private static bool Matches(string pattern, string name)
    {
        if (!pattern.Contains('[', StringComparison.Ordinal))
        {
            return FileSystemName.MatchesSimpleExpression(pattern, name, ignoreCase: false);
        }
        return MatchFrom(pattern, 0, name, 0);
    }

    private static bool MatchFrom(string pattern, int p, string name, int n)
    {
        while (p < pattern.Length)
        {
            char c = pattern[p];
            if (c == '*')
            {
                for (int k = n; k <= name.Length; k++)
                {
                    if (MatchFrom(pattern, p + 1, name, k))
                    {
                        return true;
                    }
                }
                return false;
            }
            if (n >= name.Length)
            {
                return false;
            }
            if (c == '[')
            {
                int close = pattern.IndexOf(']', p + 2);
                if (close < 0)
                {
                    return false;
                }
                string set = pattern[(p + 1)..close];
                bool negate = set.StartsWith('!');
                if (negate)
                {
                    set = set[1..];
                }
                bool inSet = false;
                for (int i = 0; i < set.Length; i++)
                {
                    if (i + 2 < set.Length && set[i + 1] == '-')
                    {
                        inSet |= name[n] >= set[i] && name[n] <= set[i + 2];
                        i += 2;
                    }
                    else
                    {
                        inSet |= name[n] == set[i];
                    }
                }
                if (inSet == negate)
                {
                    return false;
                }
                p = close + 1;
                n++;
                continue;
            }
            if (c != '?' && c != name[n])
            {
                return false;
            }
            p++;
            n++;
        }
        return n == name.Length;
    }

    /// <summary>The config id udr answers to in keepalived's conditional lines (<c>@udr …</c>).</summary>
    public const string ConfigId = "udr";

    /// <summary>
    /// keepalived's conditional configuration (keepalived.conf(5)): a line that starts with <c>@ID</c> is read only by the
    /// process whose config id is ID, one with <c>@^ID</c> by every other. udr's id is <see cref="ConfigId"/>, so
    /// <c>@udr lvs_sync_daemon eth0 VI_1</c> is udr's while keepalived (whose id is its host name) passes over it.
    /// Returns whether udr reads the line and where its words start.
    /// </summary>
    private static bool TakeConditionalLine(string line, out int start)
    {
        start = 0;
        while (start < line.Length && char.IsWhiteSpace(line[start]))
        {
            start++;
        }
        if (start >= line.Length || line[start] != '@')
        {
            start = 0;
            return true;
        }
        int end = start;
        while (end < line.Length && !char.IsWhiteSpace(line[end]))
        {
            end++;
        }
        string condition = line[(start + 1)..end];
        bool negated = condition.StartsWith('^');
        bool ours = (negated ? condition[1..] : condition) == ConfigId;
        start = end;
        return ours != negated;
    }

    private static List<Token> Tokenize(string text, string file)
    {
        var tokens = new List<Token>();
        string[] lines = text.Split('\n');
        var word = new StringBuilder();
        for (int index = 0; index < lines.Length; index++)
        {
            string line = lines[index];
            int lineNumber = index + 1;
            int start = tokens.Count;
            int i = 0;
            if (!TakeConditionalLine(line, out i))
            {
                continue;
            }
            while (i < line.Length)
            {
                char c = line[i];
                if (char.IsWhiteSpace(c))
                {
                    i++;
                    continue;
                }
                if (c is '!' or '#')
                {
                    break;
                }
                if (c is '{' or '}')
                {
                    tokens.Add(new Token(c.ToString(), false, lineNumber, false));
                    i++;
                    continue;
                }
                word.Clear();
                bool quoted = false;
                if (c == '"')
                {
                    int close = line.IndexOf('"', i + 1);
                    if (close < 0)
                    {
                        throw new ConfigException(new ConfigPlace(file, lineNumber), "a quoted word is not closed on its line");
                    }
                    word.Append(line, i + 1, close - i - 1);
                    quoted = true;
                    i = close + 1;
                }
                else
                {
                    while (i < line.Length && !char.IsWhiteSpace(line[i]) && line[i] is not '{' and not '}')
                    {
                        word.Append(line[i]);
                        i++;
                    }
                }
                tokens.Add(new Token(word.ToString(), quoted, lineNumber, false));
            }
            if (tokens.Count > start)
            {
                Token last = tokens[^1];
                tokens[^1] = last with { EndsLine = true };
            }
        }
        return tokens;
    }
}
