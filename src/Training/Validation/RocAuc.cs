namespace Orchestrator.Training;

/// <summary>
/// The exact area under the ROC curve: the probability that a random positive scores above a random negative, a tie
/// counting one half. Computed from ranks (Mann-Whitney U), tied scores sharing their average rank, in O(n log n).
/// </summary>
public static class RocAuc
{
    /// <summary>The AUC of <paramref name="scores"/> against <paramref name="labels"/> (each 0 or 1); null when a class is missing, a label is neither or a score is NaN.</summary>
    public static double? Compute(ReadOnlySpan<double> scores, ReadOnlySpan<double> labels)
    {
        if (scores.Length != labels.Length) throw new ArgumentException($"{scores.Length} scores but {labels.Length} labels.");
        var order = new int[scores.Length];
        for (int i = 0; i < order.Length; i++)
        {
            if (labels[i] is not (0 or 1) || double.IsNaN(scores[i])) return null;
            order[i] = i;
        }
        var sorted = scores.ToArray();
        Array.Sort(sorted, order);
        double positiveRanks = 0;
        long positives = 0;
        for (int start = 0; start < sorted.Length;)
        {
            int end = start;
            while (end < sorted.Length && sorted[end] == sorted[start]) end++;
            double rank = (start + 1 + end) / 2.0;   // the average of ranks start+1 .. end
            for (int k = start; k < end; k++)
                if (labels[order[k]] == 1)
                {
                    positiveRanks += rank;
                    positives++;
                }
            start = end;
        }
        long negatives = scores.Length - positives;
        if (positives == 0 || negatives == 0) return null;
        return (positiveRanks - positives * (positives + 1) / 2.0) / ((double)positives * negatives);
    }
}
