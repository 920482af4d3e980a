public enum ScaleBenchmark {
    public static func markdown(sizes: [Int]) -> String { "TODO" }
}
