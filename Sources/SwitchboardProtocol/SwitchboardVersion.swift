/// The release version of this Switchboard build, reported in `Welcome` and status.
public enum SwitchboardVersion {
    public static let string = "0.1.0"
}
