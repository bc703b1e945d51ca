namespace Orchestrator.Silo;

/// <summary>The known name closest to a mistyped one, for "did you mean" hints: edit distance with adjacent swaps, ignoring case.</summary>
static class NearestName
{
    /// <summary>The candidate fewest edits from <paramref name="name"/>, or null when even that one is too far to be a typo of it.</summary>
    public static string? Of(string name, IEnumerable<string> candidates)
    {
        int allowed = Math.Clamp(name.Length / 3, 1, 3);
        return candidates
            .Select(candidate => (Candidate: candidate, Distance: Distance(name.ToLowerInvariant(), candidate.ToLowerInvariant())))
            .Where(c => c.Distance <= allowed)
            .OrderBy(c => c.Distance)
            .Select(c => c.Candidate)
            .FirstOrDefault();
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours each cost 1.</summary>
    static int Distance(string a, string b)
    {
        // d[i, j]: edits from a[..i] to b[..j].
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int substitution = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + substitution);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
